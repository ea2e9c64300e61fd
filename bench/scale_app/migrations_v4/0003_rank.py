from django.db import migrations, models


class Migration(migrations.Migration):
    """Expand: a nullable column and an index on it (old code keeps working)."""

    dependencies = [("scale_app", "0002_note")]
    operations = [
        migrations.AddField(
            model_name="scalenote", name="rank", field=models.IntegerField(null=True)
        ),
        migrations.AddIndex(
            model_name="scalenote",
            index=models.Index(fields=["rank"], name="scale_note_rank_idx"),
        ),
    ]
