"""Import a benchmark file (or folder) into a dataset from the command line."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipeline.benchmarks import FORMATS
from webapp.datasets.models import ImportStatus
from webapp.datasets.services import ImportOptions, ImportRejected, dataset_import_create, dataset_import_run


class Command(BaseCommand):
    help = "Import PATH (a file, a folder such as BBH's 27 task files, or several files) into a dataset."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--format", choices=sorted(FORMATS), help="Skip detection and read as this format.")
        parser.add_argument("--name", default="", help="Dataset name (default: from the file name).")
        split = parser.add_mutually_exclusive_group()
        split.add_argument("--split-seed", type=int, help="Seeded random split with this seed.")
        split.add_argument("--split-rule", choices=["auto", "file", "seeded", "first80"], default="auto",
                           help="auto: the file's split if it has one, else seeded with seed 0.")
        parser.add_argument("--test-fraction", type=float, default=0.2)
        parser.add_argument("--license-note", default="")

    def handle(self, *args, paths, format, name, split_seed, split_rule, test_fraction, license_note, **options):
        import_options = ImportOptions.from_fields(
            dataset_name=name, format=format, license_note=license_note, test_fraction=test_fraction,
            split_rule="seeded" if split_seed is not None else split_rule, seed=split_seed or 0,
        )
        try:
            job = dataset_import_create(user=None, options=import_options, paths=[Path(p) for p in paths])
        except ImportRejected as error:
            raise CommandError(str(error)) from None
        job = dataset_import_run(import_id=job.pk)
        if job.status != ImportStatus.SUCCEEDED:
            raise CommandError(f"nothing was imported: {job.error}")
        self.stdout.write(self.style.SUCCESS(
            f"{job.dataset.name}: {job.problems_added} problems added, {job.problems_skipped} already there "
            f"(format {job.detected_format}, {job.records_read} records read)"
        ))
