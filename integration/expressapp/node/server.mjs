// Express apps for the interop tests in integration/express: each one
// express-session over a Node session store, on a MongoDB collection that
// a Go service shares.
//
// The configuration is JSON in the environment variable INTEROP_APPS:
//   {"uri": "mongodb://...", "apps": [{"name", "store": "iwsio" | "connect-mongo",
//     "collection", "prefix", "secret", "ttl" (seconds), "cookie": {...},
//     "resave", "saveUninitialized", "rolling"}]}
// Once every app listens (on 127.0.0.1, a free port each), it prints one
// line to stdout: {"name": port, ...}. It stops when stdin closes or on
// SIGTERM.
//
// Routes (every answer is JSON {id, session} after the change, unless said
// otherwise):
//   GET  /get                      nothing changes
//   POST /set                      Object.assign(req.session, body)
//   GET  /add?item=x&wait=ms       push x to req.session.items, wait ms, save
//   GET  /cookie?sameSite=&maxAge=&partitioned=&priority=
//                                  set req.session.cookie fields
//   GET  /destroy                  req.session.destroy()
//   GET  /regenerate               req.session.regenerate()
import express from 'express'
import session from 'express-session'
import { MongoSessionStore } from '@iwsio/mongodb-express-session'
import MongoStore from 'connect-mongo'
import { MongoClient } from 'mongodb'

const config = JSON.parse(process.env.INTEROP_APPS)
const clients = []
const servers = []

function makeStore(app) {
  if (app.store === 'iwsio') {
    // The store ignores prefix (0.4.10); it is passed to show that.
    const store = new MongoSessionStore({
      uri: config.uri,
      collection: app.collection,
      ttl: app.ttl * 1000,
      prefix: app.prefix,
      createTTLIndex: false, // FerretDB has no TTL indexes
    })
    clients.push(store)
    return store
  }
  const client = new MongoClient(config.uri)
  clients.push(client)
  const options = {
    client,
    collectionName: app.collection,
    ttl: app.ttl,
    stringify: false,
    autoRemove: 'disabled', // FerretDB has no TTL indexes
  }
  if (app.prefix) {
    options.transformId = (sid) => app.prefix + sid
  }
  return MongoStore.create(options)
}

function sameSite(v) {
  if (v === 'true') return true
  if (v === 'false') return false
  return v
}

function reply(req, res) {
  res.json({ id: req.sessionID, session: req.session ?? null })
}

function makeApp(app) {
  const store = makeStore(app)
  store.on?.('error', (err) => console.error(`${app.name}: store error:`, err))
  const web = express()
  web.use(express.json({ limit: '20mb' }))
  web.use(session({
    secret: app.secret,
    store,
    resave: app.resave,
    saveUninitialized: app.saveUninitialized,
    rolling: app.rolling,
    cookie: app.cookie,
  }))
  web.get('/get', reply)
  web.post('/set', (req, res) => {
    const body = req.body
    for (const [k, v] of Object.entries(body)) {
      // Dates travel as {"$date": iso}.
      req.session[k] = v && typeof v === 'object' && '$date' in v ? new Date(v.$date) : v
    }
    reply(req, res)
  })
  web.get('/add', (req, res, next) => {
    req.session.items = [...(req.session.items ?? []), req.query.item]
    const wait = Number(req.query.wait ?? 0)
    setTimeout(() => req.session.save((err) => (err ? next(err) : reply(req, res))), wait)
  })
  web.get('/cookie', (req, res) => {
    const c = req.session.cookie
    if (req.query.sameSite !== undefined) c.sameSite = sameSite(req.query.sameSite)
    if (req.query.maxAge !== undefined) c.maxAge = req.query.maxAge === 'null' ? null : Number(req.query.maxAge)
    if (req.query.partitioned !== undefined) c.partitioned = req.query.partitioned === 'true'
    if (req.query.priority !== undefined) c.priority = req.query.priority
    // A cookie change alone is not a change of the session for
    // express-session: mark it.
    req.session.cookieChanged = (req.session.cookieChanged ?? 0) + 1
    reply(req, res)
  })
  web.get('/destroy', (req, res, next) => {
    const id = req.sessionID
    req.session.destroy((err) => (err ? next(err) : res.json({ id, session: null })))
  })
  web.get('/regenerate', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err)
      req.session.user = 'regenerated'
      reply(req, res)
    })
  })
  web.use((err, req, res, _next) => {
    console.error(`${app.name}: ${req.method} ${req.url}:`, err)
    res.status(500).json({ error: String(err?.stack ?? err) })
  })
  return new Promise((resolve, reject) => {
    const srv = web.listen(0, '127.0.0.1', () => resolve([app.name, srv.address().port]))
    srv.on('error', reject)
    servers.push(srv)
  })
}

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  for (const srv of servers) srv.close()
  for (const srv of servers) srv.closeAllConnections?.()
  await Promise.allSettled(clients.map((c) => c.close()))
  process.exit(0)
}
process.on('SIGTERM', stop)
process.stdin.on('end', stop)
process.stdin.on('error', stop)
process.stdin.resume()

const ports = Object.fromEntries(await Promise.all(config.apps.map(makeApp)))
process.stdout.write(JSON.stringify(ports) + '\n')
