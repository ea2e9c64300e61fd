from django.db import models


class ScaleNote(models.Model):
    """The table of the benchmark's migrations; its later columns exist only in v2..v4."""

    title = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.title
