"""What sits around the codec: batch encoding on Dask, the viewer's server, previews, the trimesh loader."""
