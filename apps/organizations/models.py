"""A tree of organizations per tenant, stored as a materialised path.

Each node keeps `path`, the ids from the root down to itself (`/1/5/12/`), and
its `depth` (a root is 0). A subtree is one indexed prefix scan
(`path LIKE '/1/5/%'`, served by a b-tree on the C-collated column), the ancestors
are the ids in the path: either costs one query whatever the depth, and a move
rewrites the subtree's paths in one UPDATE. Chosen over PostgreSQL's ltree
(the embedded PostgreSQL build ships without contrib extensions, and ltree
labels would be the same ids) and over a recursive CTE (reads cost grows with
depth and every subtree permission check would need one).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower

BUILTIN_TYPES = ("company", "department", "team")
TYPE_VALIDATOR = RegexValidator(
    r"^[a-z][a-z0-9_-]{0,49}$",
    "Use a lower-case word: letters, digits, '-' or '_' (company, department, team or your own).",
)


class Organization(models.Model):
    name = models.CharField(max_length=200)
    # company, department, team, or a type the tenant uses (any lower-case word).
    type = models.CharField(max_length=50, validators=[TYPE_VALIDATOR], default="team")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    # Byte order ("C" collation): /1/ sorts before /1/5/ before /12/, and one plain b-tree
    # serves both the prefix scan and tree order (other collations ignore the slashes).
    path = models.CharField(max_length=1000, editable=False, default="", db_collation="C")
    depth = models.PositiveSmallIntegerField(editable=False, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["path"]
        constraints = [
            # Siblings have distinct names (roots count as siblings of each other).
            models.UniqueConstraint(
                "parent",
                Lower("name"),
                name="organizations_sibling_name_uniq",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            models.Index(fields=["path"], name="organizations_path_c_idx"),
            models.Index(fields=["type"], name="organizations_type_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def ancestor_ids(self) -> list[int]:
        """Ids from the root down to the parent, read off the path (no query)."""
        return [int(part) for part in self.path.strip("/").split("/")[:-1] if part]

    def contains(self, other: Organization) -> bool:
        """Whether `other` is this node or one of its descendants."""
        return other.path.startswith(self.path)


class Membership(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    title = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"], name="organizations_member_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user.email} in {self.organization.name}"
