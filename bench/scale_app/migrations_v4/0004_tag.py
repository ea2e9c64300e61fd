from django.db import migrations, models


class Migration(migrations.Migration):
    """Expand: a nullable column and an index on it (old code keeps working)."""

    dependencies = [("scale_app", "0003_rank")]
    operations = [
        migrations.AddField(
            model_name="scalenote", name="tag", field=models.CharField(max_length=50, null=True)
        ),
        migrations.AddIndex(
            model_name="scalenote",
            index=models.Index(fields=["tag"], name="scale_note_tag_idx"),
        ),
    ]
