// The probe server started from Node, for the hostile-client suite.
//
//   node serve_node.js CONFIG ADDR
//
// Serves until SIGTERM, then runs the shutdown sequence and exits 0.
'use strict'
const path = require('node:path')
const { Health } = require(path.join(__dirname, '..', '..', '..', 'bindings', 'node'))

const [config, addr] = process.argv.slice(2)
const health = new Health({ config })
health.serve({ addr }).then((server) => {
  console.error(`serving on ${server.url}, at most ${server.maxConnections} connections`)
  process.on('SIGTERM', () => {
    server.shutdown({ drainMs: 0 }).then(() => process.exit(0))
  })
})
