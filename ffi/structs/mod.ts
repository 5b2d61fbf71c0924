/**
 * Every struct layout shared with libvale, for tests/abi_test.ts (which
 * checks each against `vale_abi_layout`). A new codec goes in this list.
 *
 * @module
 */
import type { Layout } from "../layout.ts";
import { FWD_CONF, FWD_STATS } from "./fwd.ts";
import { IO_INFO, IO_LINK, IO_OPTS, IO_STATS } from "./io.ts";
import { KFAST_STATS } from "./kfast.ts";
import { OPEN_REQ } from "./open_req.ts";
import { PORT_INFO } from "./port_info.ts";
import { RING, SLOT } from "./ring.ts";
import { BR_CONF, BR_STATS, PG_CONF, PG_STATS } from "./tools.ts";

/** The layouts, by C struct name. */
export const LAYOUTS: readonly Layout[] = [
  OPEN_REQ,
  PORT_INFO,
  RING,
  SLOT,
  IO_OPTS,
  IO_STATS,
  IO_INFO,
  IO_LINK,
  FWD_CONF,
  FWD_STATS,
  KFAST_STATS,
  PG_CONF,
  PG_STATS,
  BR_CONF,
  BR_STATS,
];
