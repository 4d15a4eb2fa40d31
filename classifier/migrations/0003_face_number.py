from itertools import groupby

from django.db import migrations, models

from ml.faces import reading_order


def number_faces_in_reading_order(apps, schema_editor) -> None:
    """Faces stored before numbering get their capture's reading order, as new captures do."""
    Face = apps.get_model("classifier", "Face")
    faces = Face.objects.order_by("capture_id", "id").only("capture_id", "box_x", "box_y", "box_width", "box_height")
    changed = []
    for _, group in groupby(faces.iterator(chunk_size=2000), key=lambda face: face.capture_id):
        group = list(group)
        boxes = [(face.box_x, face.box_y, face.box_width, face.box_height) for face in group]
        for number, index in enumerate(reading_order(boxes), start=1):
            group[index].number = number
            changed.append(group[index])
        if len(changed) >= 2000:
            Face.objects.bulk_update(changed, ["number"])
            changed = []
    Face.objects.bulk_update(changed, ["number"])


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
