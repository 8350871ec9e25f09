// Shared helpers of the node:test suites.

import { createRequire } from 'node:module'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import http from 'node:http'

const require = createRequire(import.meta.url)

/** The package under test, loaded the way users load it. */
export const runward = require('..')

/** A fresh temporary directory. */
export function tempDir() {
  return mkdtempSync(join(tmpdir(), 'runward-node-'))
}

/** Writes `text` as `runward.toml` in a fresh temporary directory and returns its path. */
export function writeConfig(text) {
  const file = join(tempDir(), 'runward.toml')
  writeFileSync(file, text)
  return file
}

/** GET `url`; resolves to `{ status, headers, body }`. */
export function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }))
    })
    req.on('error', reject)
  })
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Keeps the JavaScript thread busy for `ms` milliseconds. */
export function blockFor(ms) {
  const until = Date.now() + ms
  while (Date.now() < until) {
    // busy: nothing else runs on this thread
  }
}

/** Listens on a free loopback port; resolves to the base URL. */
export function listen(server) {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`))
  })
}
