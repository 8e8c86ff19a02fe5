"""Import the papers' released feedback (SALAM finetune data, FAIR feedback or rationale file) as a teacher run."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from webapp.teach.imports import (
    FORMATS, IMPORT_ERRORS, feedback_import, feedback_import_report, imported_feedback_run,
)


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
        except IMPORT_ERRORS as error:
            raise CommandError(f"nothing was imported: {error}") from None
        *notes, counts = feedback_import_report(run, file_name=path.name, already=earlier is not None)
        for note in notes:
            self.stdout.write(note)
        self.stdout.write(self.style.SUCCESS(counts))
