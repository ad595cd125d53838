// The image file of a window: a PNG path and its dimensions, read with pngjs.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { PNG } from "pngjs";
import { FsError } from "../fs/errors.js";

export interface ImageRef { path: string; width: number; height: number }

/** Read a PNG's dimensions (only its header is parsed). Rejects anything that is not a PNG. */
export async function readPngSize(p: string, cwd: string): Promise<ImageRef> {
  if (/[\n\0]/.test(p)) throw new FsError("EINVAL", "image: bad path");
  const abs = path.resolve(cwd || "/", p);
  let st;
  try { st = await stat(abs); } catch { throw new FsError("ENOENT", `image: ${abs}: no such file`); }
  if (!st.isFile()) throw new FsError("EINVAL", `image: ${abs}: not a regular file`);
  return new Promise((resolve, reject) => {
    const png = new PNG();
    const src = createReadStream(abs);
    let done = false;
    const finish = (e: Error | null, r?: ImageRef) => {
      if (done) return;
      done = true;
      src.destroy();
      if (e) reject(e); else resolve(r!);
    };
    png.on("metadata", (m: { width: number; height: number }) => finish(null, { path: abs, width: m.width, height: m.height }));
    png.on("error", (e: Error) => finish(new FsError("EINVAL", `image: ${abs}: not a PNG (${e.message})`)));
    src.on("error", (e) => finish(new FsError("EIO", `image: ${abs}: ${e.message}`)));
    src.on("end", () => finish(new FsError("EINVAL", `image: ${abs}: not a PNG (truncated)`)));
    src.pipe(png);
  });
}
