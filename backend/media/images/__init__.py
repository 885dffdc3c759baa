"""Image processing: check the bytes, decode under limits, orient, strip, make WebP presets."""
from backend.media.images.variants import process

__all__ = ["process"]
