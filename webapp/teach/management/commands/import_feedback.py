"""Import the papers' released feedback (SALAM finetune data, FAIR feedback or rationale file) as a teacher run."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipeline.benchmarks.records import DatasetFormatError
from webapp.datasets.services import ImportRejected
from webapp.gather.seeds import SeedImportError
from webapp.teach.imports import FORMATS, FeedbackImportError, feedback_import, imported_feedback_run


class Command(BaseCommand):
    help = "Import PATH, a released feedback file, as a finished teacher run on the student's wrong answers."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--format", choices=sorted(FORMATS), help="Skip detection.")
        parser.add_argument("--teacher-name", default="",
                            help="SALAM's teacher, recorded as imported:NAME (default: gpt-4). FAIR files name theirs.")

    def handle(self, *args, path, format, teacher_name, **options):
        path = Path(path)
        earlier = imported_feedback_run(path) if path.is_file() else None
        try:
            run = feedback_import(path=path, format=format, teacher_name=teacher_name)
        except (DatasetFormatError, FeedbackImportError, SeedImportError, ImportRejected) as error:
            raise CommandError(f"nothing was imported: {error}") from None
        if earlier is not None:
            self.stdout.write(f"Already imported as run #{run.pk} {run.name!r}; nothing added.")
        elif any(joined["file"] == path.name for joined in run.config.get("merged", {}).values()):
            self.stdout.write(f"{path.name} is about the same wrong answers as {run.config['imported']['file']}: "
                              f"it joined run #{run.pk}, each teacher's feedback and rationale together.")
        counts = run.counts
        teachers = ", ".join(f"{name} {row['total']}" for name, row in sorted(counts["per_teacher"].items()))
        line = f"Run #{run.pk} {run.name!r}: {counts['feedback']} feedback ({teachers}); {counts['parse_failures']} parse failures"
        if "fair_rule_agrees" in counts:
            line += (f"; {counts['peer_accepted']} rationales accepted by peer review, FAIR's rule agreeing on "
                     f"{counts['fair_rule_agrees']} of {counts['fair_rule_agrees'] + counts['fair_rule_differs']}")
        self.stdout.write(self.style.SUCCESS(line + "."))
