/**
 * safetensors reader checked to the letter of the format (issue #13 item 3): every violation is
 * refused with a message naming the file and the tensor.
 */
import assert from "node:assert/strict";
import {
  encodeSafeTensors,
  MAX_HEADER_BYTES,
  parseSafeTensors,
  SafeTensorsError,
} from "../lib/io/safetensors.ts";

/** Bytes of a file with this raw header text and `data` bytes (header padded to 8). */
function raw(header: string, data: number): Uint8Array {
  let h = header;
  while ((8 + h.length) % 8) h += " ";
  const hb = new TextEncoder().encode(h);
  const out = new Uint8Array(8 + hb.length + data);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  for (let i = 0; i < data; i++) out[8 + hb.length + i] = i & 255;
  return out;
}

function refuses(bytes: Uint8Array, re: RegExp) {
  assert.throws(() => parseSafeTensors(bytes, "w.safetensors"), (e: unknown) => {
    assert.ok(e instanceof SafeTensorsError, String(e));
    assert.match((e as Error).message, /^w\.safetensors: /);
    assert.match((e as Error).message, re);
    return true;
  });
}

Deno.test("safetensors: a well-formed file round-trips, in header order", () => {
  const bytes = encodeSafeTensors({
    b: { dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    a: { dtype: "I32", shape: [3], data: new Int32Array([5, 6, 7]) },
    e: { dtype: "F32", shape: [0], data: new Float32Array(0) },
  }, { k: "v" });
  const st = parseSafeTensors(bytes);
  assert.deepEqual([...st.tensors.keys()], ["b", "a", "e"]);
  assert.deepEqual([...(st.tensors.get("a")!.data as Int32Array)], [5, 6, 7]);
  assert.deepEqual(st.metadata, { k: "v" });
});

Deno.test("safetensors: overlapping byte ranges (two tensors sharing bytes) are refused", () => {
  const h = JSON.stringify({
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
  });
  refuses(raw(h, 12), /tensor b data_offsets \[4, 12\] overlap tensor a \[0, 8\]/);
  const same = JSON.stringify({
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    b: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
  });
  refuses(raw(same, 8), /overlap/);
});

Deno.test("safetensors: a gap, trailing bytes, or a range past the buffer are refused", () => {
  const gap = JSON.stringify({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } });
  refuses(raw(gap, 8), /tensor a begins at byte 4 .*gap \[0, 4\)/);
  const trail = JSON.stringify({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } });
  refuses(raw(trail, 12), /cover 4 bytes but the data buffer has 12 \(trailing bytes\)/);
  const past = JSON.stringify({ a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } });
  refuses(raw(past, 8), /tensor a data_offsets \[0, 16\] reach past the 8-byte data buffer/);
});

Deno.test("safetensors: dtype × shape must equal the byte length; shapes and offsets well-typed", () => {
  const wrong = JSON.stringify({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } });
  refuses(raw(wrong, 8), /tensor w \(F32 \[3\]\) needs 12 bytes, data_offsets \[0, 8\] give 8/);
  const neg = JSON.stringify({ w: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } });
  refuses(raw(neg, 8), /tensor w: shape \[-2\] is not a list of sizes/);
  const rev = JSON.stringify({ w: { dtype: "F32", shape: [0], data_offsets: [8, 0] } });
  refuses(raw(rev, 8), /tensor w: data_offsets \[8,0\] is not \[begin, end\]/);
  const dt = JSON.stringify({ w: { dtype: "Q4", shape: [1], data_offsets: [0, 1] } });
  refuses(raw(dt, 1), /tensor w has unsupported dtype Q4/);
});

Deno.test("safetensors: duplicate tensor names are refused (JSON.parse would keep the last)", () => {
  const dup = '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' +
    '"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
  refuses(raw(dup, 8), /tensor name "w" appears twice/);
  // A name that merely appears inside metadata values or nested objects is not a duplicate.
  const ok = '{"__metadata__":{"w":"x"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
  assert.equal(parseSafeTensors(raw(ok, 4)).tensors.size, 1);
});

Deno.test("safetensors: header size bounded, header an object, metadata strings only", () => {
  const big = new Uint8Array(16);
  new DataView(big.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES) + 1n, true);
  refuses(big, /header length 100000001 exceeds the format's limit of 100000000 bytes/);
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 0xffffffffffffffffn, true);
  refuses(huge, /exceeds the format's limit/);
  refuses(raw("[1,2]", 0), /header is not a JSON object/);
  refuses(raw('{"__metadata__":{"n":3}}', 0), /__metadata__ value of "n" is not a string/);
  refuses(raw("{nope", 0), /header is not JSON/);
});

Deno.test("safetensors: a key repeated inside __metadata__ is refused", () => {
  const dup =
    '{"__metadata__":{"a":"1","a":"2"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
  refuses(raw(dup, 4), /__metadata__ key "a" appears twice/);
  const ok =
    '{"__metadata__":{"a":"{\\"a\\":1}","b":"x"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
  assert.equal(parseSafeTensors(raw(ok, 4)).metadata.a, '{"a":1}');
});
