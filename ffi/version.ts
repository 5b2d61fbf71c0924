/** The package's version (deno.json's "version"; tests/package_test.ts keeps them equal). */
export const VERSION = "0.1.0";
