'use strict'
// Preloaded (`node --require freeze.js`) by both halves of the conformance suite: Segment's
// harness in plain Node and Sluice's sidecar. Destination code that stamps the current time or a
// random id into a request (a `sent_at`, an idempotency key, a multipart boundary...) then
// produces the same bytes on both sides, so bodies compare byte for byte instead of being
// normalised after the fact.
//
// Constant rather than seeded: the two sides run different amounts of code before a perform
// (Segment's harness makes a messageId; the sidecar's onEvent evaluates FQL), so a sequence
// would be at a different place on each side. Timers are untouched (timeouts still work).

const crypto = require('crypto')

const FROZEN_MS = Date.parse('2024-03-05T06:07:08.009Z')
const RealDate = Date

class FrozenDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(FROZEN_MS)
    else super(...args)
  }

  static now() {
    return FROZEN_MS
  }
}
globalThis.Date = FrozenDate

Math.random = () => 0.4242424242

const BYTE = 0x5a
const fill = (buf) => {
  const view = ArrayBuffer.isView(buf) ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : new Uint8Array(buf)
  view.fill(BYTE)
  return buf
}
crypto.randomFillSync = (buf, offset, size) => {
  if (offset === undefined) return fill(buf)
  const view = new Uint8Array(buf.buffer || buf, (buf.byteOffset || 0) + offset, size ?? buf.byteLength - offset)
  view.fill(BYTE)
  return buf
}
crypto.randomBytes = (size, callback) => {
  const buf = Buffer.alloc(size, BYTE)
  if (typeof callback === 'function') {
    process.nextTick(callback, null, buf)
    return undefined
  }
  return buf
}
crypto.randomUUID = () => '5a5a5a5a-5a5a-4a5a-9a5a-5a5a5a5a5a5a'
if (crypto.webcrypto) {
  crypto.webcrypto.getRandomValues = (array) => fill(array)
  crypto.webcrypto.randomUUID = crypto.randomUUID
}
if (globalThis.crypto && globalThis.crypto !== crypto.webcrypto) {
  try {
    globalThis.crypto.getRandomValues = (array) => fill(array)
    globalThis.crypto.randomUUID = crypto.randomUUID
  } catch (err) {
    // a read-only global crypto: the webcrypto object above is usually the same one
  }
}
