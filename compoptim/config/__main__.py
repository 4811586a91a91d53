"""``python -m compoptim.config``: rewrite schemas.json from the registries (see snapshot.py)."""

from compoptim.config import snapshot

snapshot.write()
print(f"wrote {snapshot.SNAPSHOT}")
