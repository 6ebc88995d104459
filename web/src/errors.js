/** What is wrong with a `.ksc` file, in one line (the Python reader's KscFormatError). */
export class KscFormatError extends Error {
  constructor(message) {
    super(message);
    this.name = "KscFormatError";
  }
}
