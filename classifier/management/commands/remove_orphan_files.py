"""`python manage.py remove_orphan_files [--delete] [--min-age SECONDS]`: the media folder's files that no capture
points to, listed, and with --delete removed.

Uploads write their files before their rows are committed, and deletes remove them after, so that no row lacks
its file; a process killed in between (or a removal that failed) leaves a file with no row. Such files are only
found here. A file younger than the minimum age is left alone: it may be an upload on its way to its commit.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand

from classifier import selectors, services

DEFAULT_MIN_AGE_SECONDS = 3600


class Command(BaseCommand):
    help = (
        "List the files of the media folder that no capture points to and that are older than --min-age; "
        "with --delete, remove them. A dry run by default."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--delete", action="store_true", help="remove the orphan files (default: only list them)")
        parser.add_argument(
            "--min-age",
            type=int,
            default=DEFAULT_MIN_AGE_SECONDS,
            metavar="SECONDS",
            help="leave files younger than this: an upload writes its files before its rows are committed "
            "(default: %(default)s)",
        )

    def handle(self, *args, delete: bool, min_age: int, **options) -> None:
        found = selectors.orphan_media_files(min_age=timedelta(seconds=min_age))
        for orphan in found.orphans:
            self.stdout.write(f"{orphan.name} ({_size(orphan.size)}, written {orphan.modified:%Y-%m-%d %H:%M} UTC)")
        size = _size(sum(orphan.size for orphan in found.orphans))
        if found.recent:
            files = "file" if found.recent == 1 else "files"
            self.stdout.write(
                f"{found.recent} {files} newer than {_duration(min_age)} was left: it may be an upload on its way."
            )
        if not found.orphans:
            self.stdout.write(f"No orphan files among the {found.checked} files of the media folder.")
        elif delete:
            services.media_files_remove([orphan.name for orphan in found.orphans])
            self.stdout.write(f"Removed {_count(found.orphans)} ({size}) of the {found.checked} in the media folder.")
        else:
            self.stdout.write(f"Found {_count(found.orphans)} ({size}) of the {found.checked} in the media folder.")
            self.stdout.write("Dry run: nothing was removed; run with --delete to remove them.")


def _count(orphans: list) -> str:
    return f"{len(orphans)} orphan file{'' if len(orphans) == 1 else 's'}"


def _size(size: int) -> str:
    return f"{size} bytes" if size < 1024 else f"{size / 1024:.1f} KB" if size < 1024**2 else f"{size / 1024**2:.1f} MB"


def _duration(seconds: int) -> str:
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
