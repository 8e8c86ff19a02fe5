// The chat page: send, stop and regenerate over the conversation's websocket; the answer streams in as text.
// Model text is only ever put in the page as text (a text node); the only HTML set is the server's sanitised
// rendering that arrives with "done" (and with "user" / "message" frames), explain's panel included.
// A page whose last message has no answer yet (data-answer-pending: an explain just started) asks for it once.
(() => {
  const root = document.getElementById("chat");
  if (!root) return;
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("chat-input");
  const sendButton = document.getElementById("send");
  const stopButton = document.getElementById("stop");
  const regenerateButton = document.getElementById("regenerate");
  const state = document.getElementById("chat-state");
  const errorBox = document.getElementById("chat-error");
  const template = document.getElementById("message-template");
  const explanationPanel = document.getElementById("explanation-panel");
  const assistantName = document.querySelector(".heading .badge").textContent;
  const maxChars = Number(root.dataset.maxChars);
  // Refused before an answer started: the message was not taken, so it goes back into the box.
  const REFUSED = new Set(["empty", "too_long", "rate_limited", "busy", "unavailable", "bad_request"]);
  const CLOSED = { 4401: "You are signed out: sign in again.", 4404: "This conversation is not yours or no longer exists." };

  let socket = null;
  let open = false;
  let streaming = null;   // {article, text: Text} while an answer streams in
  let pending = null;     // {article, text} a sent message not yet accepted
  let retries = 0;
  let askOnOpen = "answerPending" in root.dataset;

  function setState(words) { state.textContent = words; }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function refreshButtons() {
    sendButton.disabled = !open || streaming !== null;
    regenerateButton.disabled = !open || streaming !== null || !list.querySelector("article.user");
    stopButton.hidden = streaming === null;
  }

  function messageArticle(role, id) {
    const article = template.content.firstElementChild.cloneNode(true);
    article.classList.add(role);
    article.querySelector("header").textContent = role === "user" ? "You" : assistantName;
    if (id) article.dataset.id = id;
    list.appendChild(article);
    article.scrollIntoView({ block: "end" });
    return article;
  }

  function setStatus(article, status, error) {
    article.dataset.status = status;
    const footer = article.querySelector(".msg-status");
    footer.hidden = status === "complete";
    footer.textContent = status === "stopped" ? "Stopped" : status === "failed" ? `Failed: ${error || "no answer"}` : "";
  }

  function showExplanation(frame) {  // an explain conversation's {reason, guideline}, rendered by the server
    if (explanationPanel && typeof frame.explanation === "string") explanationPanel.innerHTML = frame.explanation;
  }

  function removeMessage(id) {
    if (id === null || id === undefined) return;
    const old = list.querySelector(`article[data-id="${Number(id)}"]`);
    if (old) old.remove();
  }

  const handlers = {
    start(frame) {
      pending = null;
      removeMessage(frame.replaces);
      const article = messageArticle("assistant");
      article.dataset.status = "streaming";
      const text = document.createTextNode("");
      article.querySelector(".body").appendChild(text);
      streaming = { article, text };
      setState("The assistant is writing…");
    },
    delta(frame) {
      if (streaming) streaming.text.appendData(frame.text);
    },
    done(frame) {
      if (!streaming) return;
      const { article } = streaming;
      article.dataset.id = frame.id;
      article.querySelector(".body").innerHTML = frame.html;  // sanitised by the server
      setStatus(article, frame.status, frame.error);
      showExplanation(frame);
      streaming = null;
      setState(frame.status === "complete" ? "" : frame.status === "stopped" ? "Stopped." : "The answer failed.");
    },
    user(frame) {
      const article = list.querySelector("article.user:not([data-id])");
      if (!article) return;
      article.dataset.id = frame.id;
      article.querySelector(".body").innerHTML = frame.html;  // sanitised by the server
    },
    message(frame) {  // said in another tab of this conversation
      removeMessage(frame.replaces);
      const article = messageArticle(frame.role, frame.id);
      article.querySelector(".body").innerHTML = frame.html;  // sanitised by the server
      setStatus(article, frame.status, frame.error);
      showExplanation(frame);
    },
    error(frame) {
      showError(frame.message);
      if (pending && REFUSED.has(frame.code)) {
        pending.article.remove();
        if (!input.value) input.value = pending.text;
        pending = null;
      }
    },
  };

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}${root.dataset.socket}`);
    socket.addEventListener("open", () => {
      open = true;
      retries = 0;
      setState("");
      refreshButtons();
      if (askOnOpen) {  // once: a reconnect finds the answer started (or refused, with Regenerate to try again)
        askOnOpen = false;
        send({ type: "regenerate" });
      }
    });
    socket.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data);
      const handler = handlers[frame.type];
      if (handler) handler(frame);
      refreshButtons();
    });
    socket.addEventListener("close", (event) => {
      open = false;
      if (streaming) { setStatus(streaming.article, "stopped"); streaming = null; }
      refreshButtons();
      if (CLOSED[event.code]) { setState(CLOSED[event.code]); return; }
      if (retries >= 5) { setState("Disconnected: reload the page."); return; }
      retries += 1;
      setState("Reconnecting…");
      setTimeout(connect, 500 * 2 ** retries);
    });
  }

  function send(frame) {
    if (open) socket.send(JSON.stringify(frame));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const content = input.value.trim();
    if (!content || !open || streaming) return;
    if (content.length > maxChars) {
      showError(`Messages are limited to ${maxChars.toLocaleString()} characters; this one has ${content.length.toLocaleString()}.`);
      return;
    }
    errorBox.hidden = true;
    const article = messageArticle("user");
    article.querySelector(".body").textContent = content;
    pending = { article, text: content };
    input.value = "";
    send({ type: "send", content });
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  stopButton.addEventListener("click", () => send({ type: "stop" }));
  regenerateButton.addEventListener("click", () => {
    errorBox.hidden = true;
    send({ type: "regenerate" });
  });

  connect();
})();
