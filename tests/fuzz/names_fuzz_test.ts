// Fuzz parsePortName / formatPortName from the names table (see README.md here).
import { fuzz } from "./runner.ts";

Deno.test("fuzz: port names (PortNameError only, canonical round trip, no hang)", async () => {
  await fuzz("names");
});
