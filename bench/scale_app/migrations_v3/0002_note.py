from django.db import migrations, models


class Migration(migrations.Migration):
    """Expand: a nullable column and an index on it (old code keeps working)."""

    dependencies = [("scale_app", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="scalenote", name="note", field=models.CharField(max_length=100, null=True)
        ),
        migrations.AddIndex(
            model_name="scalenote",
            index=models.Index(fields=["note"], name="scale_note_note_idx"),
        ),
    ]
