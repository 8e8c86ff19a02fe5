// The review page: keyboard shortcuts, time on item, and htmx swaps of conflicts and refusals.
(() => {
  const item = () => document.getElementById("review-item");
  let shownAt = performance.now();
  // No second decision while one is on its way (a double press would decide the next item unseen).
  let waiting = false;
  const busy = () => waiting;
  const forItem = (event) => Boolean(event.detail.target) && event.detail.target.id === "review-item";
  document.addEventListener("htmx:beforeRequest", (event) => { if (forItem(event)) waiting = true; });
  document.addEventListener("htmx:afterRequest", (event) => { if (forItem(event)) waiting = false; });

  const typing = () => /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
  const press = (selector) => {
    const target = item() && item().querySelector(selector);
    if (!target) return false;
    // htmx wires up swapped-in buttons only when it settles, a moment later; a key pressed before that
    // would submit the form natively (a full reload). Wiring them up now is harmless and avoids that.
    if (window.htmx) window.htmx.process(item());
    target.click();
    return true;
  };

  // The edit boxes: the teacher's text, or SALAM's reason and guideline (Tab goes on to the guideline).
  const editor = () => document.getElementById("review-editor");
  function openEditor() {
    const box = editor() && editor().querySelector(".edit-box");
    if (!box) return;
    editor().open = true;
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }
  // Ctrl+Enter saves the edit from an edit box, or from the comment while the editor is open.
  const savesEdit = (element) => element.classList.contains("edit-box")
    || (element.id === "review-comment" && Boolean(editor()) && editor().open);

  document.addEventListener("keydown", (event) => {
    if (!item() || busy()) return;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (savesEdit(document.activeElement)) { event.preventDefault(); press("#save-edit"); }
      return;
    }
    if (event.key === "Escape" && typing()) { document.activeElement.blur(); return; }
    if (typing() || event.ctrlKey || event.metaKey || event.altKey) return;
    const actions = {
      a: () => press("[data-key=a]"),
      r: () => press("[data-key=r]"),
      s: () => press("[data-key=s]"),
      l: () => press("[data-key=l]"),
      e: () => { openEditor(); return true; },
      c: () => { const box = document.getElementById("review-comment"); if (box) box.focus(); return Boolean(box); },
    };
    const action = actions[event.key.toLowerCase()];
    if (action && action()) event.preventDefault();
  });

  document.addEventListener("click", (event) => {
    if (event.target.closest("#edit-open")) openEditor();
  });

  // The seconds since this item was shown travel with the decision.
  document.addEventListener("submit", (event) => {
    if (event.target.id !== "review-form") return;
    event.target.elements.seconds.value = ((performance.now() - shownAt) / 1000).toFixed(2);
  }, true);

  // A conflict (409) and a refused decision (400) come back as the item with its message: show them.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const status = event.detail.xhr.status;
    if ((status === 409 || status === 400) && forItem(event)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // A new item: restart the clock and show it from the top (a conflict or a refusal keeps the same item).
  let current = item() && item().dataset.review;
  document.addEventListener("htmx:afterSettle", () => {
    const id = item() ? item().dataset.review : undefined;
    if (id === current) return;
    current = id;
    shownAt = performance.now();
    window.scrollTo({ top: 0 });
  });
})();
