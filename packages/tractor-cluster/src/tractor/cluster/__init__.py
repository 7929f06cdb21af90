"""Higher-level cluster API: a flat fleet of worker actors in one block."""

from ._cluster import open_actor_cluster as open_actor_cluster

__all__ = ['open_actor_cluster']
