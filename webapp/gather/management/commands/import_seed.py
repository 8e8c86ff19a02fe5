"""Import a seed answer file (SALAM, FAIR, GSI) as a dataset plus a finished gather run."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipeline.benchmarks.records import DatasetFormatError
from pipeline.seeds import SEED_FORMATS
from webapp.gather.seeds import SeedImportError, seed_import


class Command(BaseCommand):
    help = "Import PATH, a seed file with the student's answers and their right/wrong labels."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--format", choices=sorted(SEED_FORMATS), help="Skip detection.")
        parser.add_argument("--dataset-name", default="")
        parser.add_argument("--model-name", default="", help="The student that wrote the answers.")
        parser.add_argument("--split", choices=["train", "test"], default="train",
                            help="Split for problems whose file does not say (default: train).")

    def handle(self, *args, path, format, dataset_name, model_name, split, **options):
        try:
            run = seed_import(path=Path(path), format=format, dataset_name=dataset_name, model_name=model_name, split=split)
        except (DatasetFormatError, SeedImportError) as error:
            raise CommandError(f"nothing was imported: {error}") from None
        self.stdout.write(self.style.SUCCESS(
            f"Run #{run.pk} {run.name!r}: {run.counts['correct']} right and {run.counts['wrong']} wrong answers."))
