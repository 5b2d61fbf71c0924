// Fuzz the pcap readers from the files the pcap tests build (see README.md here).
import { fuzz } from "./runner.ts";

Deno.test("fuzz: pcap readers (PcapError only, readers agree, round trip, no hang)", async () => {
  await fuzz("pcap");
});
