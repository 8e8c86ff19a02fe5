"""Write a gather run's answers in a seed's own file format."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipeline.seeds import SEED_FORMATS
from webapp.gather.seeds import SeedImportError, seed_export
from webapp.runs.models import Run, RunKind


class Command(BaseCommand):
    help = "Export the answers of gather run RUN_ID to PATH in a seed format."

    def add_arguments(self, parser):
        parser.add_argument("run_id", type=int)
        parser.add_argument("path")
        parser.add_argument("--format", choices=sorted(SEED_FORMATS), required=True)

    def handle(self, *args, run_id, path, format, **options):
        run = Run.objects.filter(pk=run_id, kind=RunKind.GATHER).first()
        if run is None:
            raise CommandError(f"no gather run #{run_id}")
        try:
            seed_export(run=run, format=format, path=Path(path))
        except SeedImportError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"Wrote {path} ({format})."))
