"""From a mesh to a .ksc file: sampling, key spheres, fitting the network (torch), quantization, the check."""
