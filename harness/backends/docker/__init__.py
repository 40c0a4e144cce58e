"""The docker backend: the engine, function images (offline base, staged wheels), the
container lab, container launcher, the image's own RIE, cleanup and doctor rows."""
