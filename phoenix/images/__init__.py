"""GoldenImagePipeline: Image Builder components (components/), recipe, distribution, lifecycle."""
