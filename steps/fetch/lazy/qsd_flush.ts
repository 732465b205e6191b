/**
 * Makes a lazily restored volume's qcow2 overlay durable while `block-stream` runs. QMP has no
 * flush command; a flush request through the daemon's own export does it (qemu flushes the whole
 * chain: the copy-on-read filter, the qcow2 L2 and refcount caches, then fdatasync). Without it a
 * `kill -9` of the daemon loses every cluster streamed since the start (the tables live in
 * memory); after it, what was streamed before the flush is kept.
 *
 * - NBD export: `NBD_CMD_FLUSH` over a fresh connection (a minimal NBD client, below). qemu honours
 *   it on read-only exports too, where `qemu-io -r -c flush` silently does nothing.
 * - FUSE export: `fsync` of the mounted file.
 *
 * @module
 */

const NBDMAGIC = 0x4e42444d41474943n;
const IHAVEOPT = 0x49484156454f5054n;
const REPLY_MAGIC = 0x3e889045565a9n;
const NBD_OPT_GO = 7;
const NBD_REP_ACK = 1;
const NBD_REQUEST_MAGIC = 0x25609513;
const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
const NBD_CMD_DISC = 2;
const NBD_CMD_FLUSH = 3;

/** Reads exactly what is asked from a connection (throws when it closes first). */
class Reader {
  #buf = new Uint8Array(0);
  constructor(private conn: Deno.Conn) {}
  async take(n: number): Promise<DataView> {
    while (this.#buf.length < n) {
      const chunk = new Uint8Array(Math.max(4096, n));
      const got = await this.conn.read(chunk);
      if (got === null) throw new Error("the NBD server closed the connection");
      const next = new Uint8Array(this.#buf.length + got);
      next.set(this.#buf);
      next.set(chunk.subarray(0, got), this.#buf.length);
      this.#buf = next;
    }
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return new DataView(out.buffer);
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** The bytes of an `NBD_OPT_GO` for export `name`, asking for no extra information. */
function optGo(name: string): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const msg = new Uint8Array(16 + 4 + nameBytes.length + 2);
  const v = new DataView(msg.buffer);
  v.setBigUint64(0, IHAVEOPT);
  v.setUint32(8, NBD_OPT_GO);
  v.setUint32(12, 4 + nameBytes.length + 2);
  v.setUint32(16, nameBytes.length);
  msg.set(nameBytes, 20);
  return msg;
}

/** The bytes of a transmission-phase request of `type` with `handle`, no data. */
function request(type: number, handle: bigint): Uint8Array {
  const msg = new Uint8Array(28);
  const v = new DataView(msg.buffer);
  v.setUint32(0, NBD_REQUEST_MAGIC);
  v.setUint16(6, type);
  v.setBigUint64(8, handle);
  return msg;
}

/** Negotiates export `name` (fixed newstyle, `NBD_OPT_GO`); throws with the server's words. */
async function negotiate(conn: Deno.Conn, reader: Reader, name: string): Promise<void> {
  const hello = await reader.take(18);
  if (hello.getBigUint64(0) !== NBDMAGIC || hello.getBigUint64(8) !== IHAVEOPT) {
    throw new Error("not a newstyle NBD server");
  }
  const flags = hello.getUint16(16) & 0b11; // FIXED_NEWSTYLE, NO_ZEROES
  const clientFlags = new Uint8Array(4);
  new DataView(clientFlags.buffer).setUint32(0, flags);
  await writeAll(conn, clientFlags);
  await writeAll(conn, optGo(name));
  for (let replies = 0; replies < 64; replies++) {
    const head = await reader.take(20);
    if (head.getBigUint64(0) !== REPLY_MAGIC) throw new Error("bad NBD option reply");
    const type = head.getUint32(12);
    const length = head.getUint32(16);
    const data = length > 0 ? await reader.take(length) : new DataView(new ArrayBuffer(0));
    if (type === NBD_REP_ACK) return;
    if (type & 0x80000000) {
      const text = new TextDecoder().decode(new Uint8Array(data.buffer));
      throw new Error(`the NBD server refused export "${name}": ${text || `error ${type}`}`);
    }
  }
  throw new Error("the NBD server sent too many option replies");
}

/**
 * Sends one `NBD_CMD_FLUSH` to export `name` on the unix socket `socket` and waits for its reply.
 * Throws an `Error` saying what failed (no server, refused export, flush error).
 */
export async function nbdFlush(socket: string, name: string, timeoutMs = 10_000): Promise<void> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path: socket });
  } catch (e) {
    throw new Error(`cannot flush through ${socket}: ${(e as Error).message}`);
  }
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const reader = new Reader(conn);
    await negotiate(conn, reader, name);
    await writeAll(conn, request(NBD_CMD_FLUSH, 1n));
    const reply = await reader.take(16);
    if (reply.getUint32(0) !== NBD_SIMPLE_REPLY_MAGIC) throw new Error("bad NBD reply");
    const error = reply.getUint32(4);
    if (error !== 0) throw new Error(`the NBD server failed the flush (errno ${error})`);
    await writeAll(conn, request(NBD_CMD_DISC, 2n)).catch(() => {});
  } catch (e) {
    throw new Error(`flush through ${socket} failed: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

/** `fsync` of the FUSE-mounted file `file`: the export flushes the whole chain. */
export async function fuseFlush(file: string): Promise<void> {
  try {
    using f = await Deno.open(file, { read: true });
    await f.sync();
  } catch (e) {
    throw new Error(`flush of ${file} failed: ${(e as Error).message}`);
  }
}
