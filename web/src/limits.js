// Limits shared by the reader, the extraction and decode(), in a module of their own so that ksc-decoder's entry
// module can check its arguments without loading the reader.

/** The most decompressed body bytes a file may declare (format/SPEC.md). */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;
/** The largest `.ksc` file read: the body's limit and room for a header. */
export const MAX_FILE_BYTES = MAX_BODY_BYTES + 1024 * 1024;
/** Cells per axis of the extraction's first, fully evaluated grid; finer grids are this times a power of two. */
export const START_CELLS = 16;
