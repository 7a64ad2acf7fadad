// The page's side of the demo protocol (the seed's effects.js, over a bare WebSocket):
//
//   server -> page  {"event":"presence_state","topic":T,"seq":S,"payload":{...}}  on join
//                   (a server in cluster mode adds "node":N, the node serving this socket)
//                   {"event":"presence_diff","topic":T,"seq":S,"payload":{...}}   per poll
//   page -> server  {"event":"sync"}   asks for presence_state again (after a seq gap)
//
// presence_state is the engine's list as of its last poll, and S the seq of the last diff
// it includes; each later diff carries the next seq. The seed's reducer trusts every diff
// to come exactly once, in order, so this module checks the seqs before dispatching.

import { presenceDiff, setPresence } from './state/presence/reducer.js'
import { setNode, setSeq, setStatus } from './state/session/reducer.js'

const EMPTY = { viewers: { count: 0 }, users: { count: 0 } }

export function socketUrl(topic, user) {
  const url = new URL('/socket', window.location.href)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  url.searchParams.set('topic', topic)
  if (user) url.searchParams.set('user', user)
  return url.toString()
}

/** Opens the socket of `topic` and keeps it open (reconnecting with backoff) until the
 * returned function is called. */
export function connectPresence(dispatch, { topic, user }) {
  let ws = null
  let seq = 0
  let synced = false
  let stopped = false
  let attempts = 0
  let retryTimer = null

  const onMessage = (event) => {
    const msg = JSON.parse(event.data)
    if (msg.topic !== topic) return
    if (msg.event === 'presence_state') {
      seq = msg.seq
      synced = true
      attempts = 0
      dispatch(setPresence(msg.payload))
      dispatch(setSeq(seq))
      dispatch(setNode(typeof msg.node === 'string' ? msg.node : null))
      dispatch(setStatus('live'))
      return
    }
    if (msg.event !== 'presence_diff' || !synced) return
    if (msg.seq === seq + 1) {
      // the next diff
    } else if (msg.seq === 1) {
      // The topic emptied and the server dropped it; it starts again from nothing.
      dispatch(setPresence(EMPTY))
    } else if (msg.seq <= seq) {
      return // already in the state we hold
    } else {
      // A diff went missing: our counts would drift from now on. Ask for the state again
      // and ignore diffs until it comes.
      synced = false
      ws.send(JSON.stringify({ event: 'sync' }))
      return
    }
    seq = msg.seq
    dispatch(presenceDiff(msg.payload))
    dispatch(setSeq(seq))
  }

  const open = () => {
    retryTimer = null
    synced = false
    dispatch(setStatus('connecting'))
    ws = new WebSocket(socketUrl(topic, user))
    ws.onmessage = onMessage
    ws.onclose = (event) => {
      if (stopped) return
      if (event.code === 1008) {
        dispatch(setStatus('rejected'))
        return
      }
      dispatch(setStatus('offline'))
      retryTimer = setTimeout(open, Math.min(5000, 500 * 2 ** attempts++))
    }
  }

  open()
  return () => {
    stopped = true
    if (retryTimer !== null) clearTimeout(retryTimer)
    ws.onmessage = null
    ws.close(1000)
  }
}
