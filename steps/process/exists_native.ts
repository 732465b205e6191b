/**
 * Whether a process or process group exists, asked with `kill(target, 0)` through Deno's FFI:
 * a few microseconds and no exception for a process that is gone. `Deno.kill` and a read of
 * `/proc/PID/stat` throw for a missing process, and building that error costs tens of
 * microseconds; every step that ends asks this twice or more (`killGroup` after its command
 * exits).
 *
 * Used where it can be: Linux or another system with glibc's `__errno_location`, FFI allowed
 * (`--allow-ffi`, given by `-A`). Elsewhere {@linkcode existsNative} answers undefined and the
 * caller asks `/proc` or `Deno.kill`.
 *
 * @module
 */

const SYMBOLS = {
  kill: { parameters: ["i32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

const ESRCH = 3;

let libc: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | null | undefined;

function lib(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | null {
  if (libc === undefined) {
    libc = null;
    try {
      if (
        Deno.build.os === "linux" &&
        Deno.permissions.querySync({ name: "ffi" }).state === "granted"
      ) {
        libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
      }
    } catch {
      libc = null; // musl, no FFI: the caller's slower way
    }
  }
  return libc;
}

/**
 * Whether process `target` exists (a zombie does), or with a negative `target`, whether process
 * group `-target` has a member; undefined when this cannot be asked here. A process of another
 * user exists too (`EPERM`).
 *
 * @example
 * ```ts
 * import { existsNative } from "./exists_native.ts";
 * import assert from "node:assert/strict";
 *
 * assert.notEqual(existsNative(Deno.pid), false);
 * assert.notEqual(existsNative(0x3fffffff), true);
 * ```
 */
export function existsNative(target: number): boolean | undefined {
  const c = lib();
  if (!c || !Number.isSafeInteger(target) || target === 0 || target === -1) return undefined;
  if (Math.abs(target) > 0x7fffffff) return false;
  if (c.kill(target, 0) === 0) return true;
  // errno of this thread, read at once: nothing runs on it between the two calls.
  const errno = c.__errno_location();
  return errno === null ? undefined : new Deno.UnsafePointerView(errno).getInt32() !== ESRCH;
}
