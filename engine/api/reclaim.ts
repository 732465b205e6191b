/**
 * Giving memory back to the system after a burst of event streams.
 *
 * An idle server allocates nothing, so V8 never collects the garbage a burst of streams left (about
 * 100 KiB a stream), and glibc keeps the native memory they freed: after 500 streams come and go,
 * the process would stay some 150 MiB larger until the next burst. Once the last stream of a burst
 * is gone, {@linkcode reclaimSoon} runs a full garbage collection (V8's `gc`, exposed for this
 * process through `node:v8` and `node:vm`) and glibc's `malloc_trim` (through FFI, where allowed).
 * Each is skipped where it is not available.
 *
 * @module
 */
import v8 from "node:v8";
import vm from "node:vm";

let collect: (() => void) | null | undefined;
let trim: (() => void) | null | undefined;
let timer: ReturnType<typeof setTimeout> | undefined;

function collector(): (() => void) | null {
  if (collect === undefined) {
    try {
      v8.setFlagsFromString("--expose-gc");
      const gc = vm.runInNewContext("gc") as unknown;
      collect = typeof gc === "function" ? () => (gc as () => void)() : null;
    } catch {
      collect = null;
    }
  }
  return collect;
}

function trimmer(): (() => void) | null {
  if (trim === undefined) {
    trim = null;
    try {
      if (Deno.build.os === "linux") {
        const lib = Deno.dlopen("libc.so.6", {
          malloc_trim: { parameters: ["usize"], result: "i32" },
        });
        trim = () => void lib.symbols.malloc_trim(0n);
      }
    } catch { /* no FFI permission, not glibc */ }
  }
  return trim;
}

/**
 * Collects garbage and trims the native heap `delayMs` from now (once, however often it is
 * called meanwhile). The timer does not keep the process alive.
 */
export function reclaimSoon(delayMs = 1000): void {
  if (timer !== undefined) return;
  timer = setTimeout(() => {
    timer = undefined;
    collector()?.();
    trimmer()?.();
  }, delayMs);
  Deno.unrefTimer(timer);
}
