"""From a .ksc file to a mesh, in numpy: the network's runtime on a sparse grid, marching cubes, decimation."""
