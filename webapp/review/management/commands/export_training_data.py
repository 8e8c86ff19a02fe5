"""Write the approved feedback of a review queue (or a teacher run) as training data in one export format."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipeline.exports import EXPORT_FORMATS, ExportError
from webapp.review.models import ReviewQueue
from webapp.review.selectors import APPROVAL_RULES
from webapp.review.services import training_data_export
from webapp.runs.models import Run, RunKind


class Command(BaseCommand):
    help = "Export approved feedback of --queue ID (or --run ID, a teacher run, over all its queues) to OUT in --format."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--queue", type=int, help="A review queue's id.")
        source.add_argument("--run", type=int, help="A teacher run's id: its feedback as reviewed in any queue.")
        parser.add_argument("--format", choices=sorted(EXPORT_FORMATS), required=True,
                            help="; ".join(f"{f.name}: {f.description}" for f in EXPORT_FORMATS.values()))
        parser.add_argument("--rule", choices=sorted(APPROVAL_RULES), default="majority",
                            help="; ".join(f"{name}: {text}" for name, text in APPROVAL_RULES.items()))
        parser.add_argument("out", help="The file to write.")

    def handle(self, *args, queue, run, format, rule, out, **options):
        source = {}
        if queue is not None:
            source["queue"] = ReviewQueue.objects.filter(pk=queue).first()
            if source["queue"] is None:
                raise CommandError(f"no review queue #{queue}")
        else:
            source["run"] = Run.objects.filter(pk=run, kind=RunKind.TEACH).first()
            if source["run"] is None:
                raise CommandError(f"no teacher run #{run}")
        try:
            summary = training_data_export(format=format, path=Path(out), rule=rule, **source)
        except ExportError as error:
            raise CommandError(f"nothing was written: {error}") from None
        count = summary.written
        self.stdout.write(self.style.SUCCESS(f"Wrote {count} approved item{'s' if count != 1 else ''} to {out} ({format})."))
        if summary.note:
            self.stdout.write(self.style.WARNING(summary.note))
