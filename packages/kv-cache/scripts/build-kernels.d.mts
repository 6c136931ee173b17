/** The base64 of the binary assembled from WAT source text. */
export function assemble(name: string, source: string): Promise<string>;
export function moduleSource(name: string, base64: string): string;
