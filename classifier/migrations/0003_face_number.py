from django.db import migrations, models


def reading_order(boxes: list[tuple[int, int, int, int]]) -> list[int]:
    """ml.faces.reading_order as it was when this migration was written: kept here, so that a later change
    there never rewrites how stored faces were numbered, and migrating needs no face detector."""
    rows: list[tuple[float, float, list[int]]] = []
    for index in sorted(range(len(boxes)), key=lambda index: boxes[index][1] + boxes[index][3] / 2):
        _, y, _, height = boxes[index]
        if rows:
            top, bottom, members = rows[-1]
            if min(bottom, y + height) - max(top, y) >= min(height, bottom - top) / 2:
                rows[-1] = (min(top, y), max(bottom, y + height), [*members, index])
                continue
        rows.append((y, y + height, [index]))
    return [index for _, _, members in rows for index in sorted(members, key=lambda index: boxes[index][0])]


def number_faces_in_reading_order(apps, schema_editor) -> None:
    """Faces stored before numbering get their capture's reading order, as new captures do."""
    Face = apps.get_model("classifier", "Face")
    # Read first, then write: SQLite should not be written while a cursor on the same table is open.
    rows = list(
        Face.objects.order_by("capture_id", "id").values_list(
            "id", "capture_id", "box_x", "box_y", "box_width", "box_height"
        )
    )
    numbers: dict[int, int] = {}
    start = 0
    while start < len(rows):
        end = start
        while end < len(rows) and rows[end][1] == rows[start][1]:
            end += 1
        group = rows[start:end]
        for number, index in enumerate(reading_order([row[2:] for row in group]), start=1):
            numbers[group[index][0]] = number
        start = end
    for face_id, number in numbers.items():
        if number != 1:  # the column's default
            Face.objects.filter(pk=face_id).update(number=number)


class Migration(migrations.Migration):
    dependencies = [
        ("classifier", "0002_retraining"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="face",
            options={"ordering": ["capture", "number", "id"]},
        ),
        migrations.AddField(
            model_name="face",
            name="number",
            field=models.PositiveSmallIntegerField(default=1),
        ),
        migrations.RunPython(number_faces_in_reading_order, migrations.RunPython.noop),
    ]
