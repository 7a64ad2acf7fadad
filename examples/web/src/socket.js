// The page's socket: the official phoenix.js client (npm `phoenix`), as the seed's front
// end uses, against either demo server's Phoenix Channels endpoint (/socket/websocket).
// One channel per video, its topic the presence topic; join params {user} (none: an
// anonymous viewer). phoenix.js reconnects and rejoins by itself; every join's reply
// carries the seq of the state that follows and the serving node (null on a single node).
//
//   join reply      {"seq":S,"node":N}
//   presence_state  {"viewers":{"count":V},"users":{"count":U}}   after each join
//   presence_diff   {"joins":{...},"leaves":{...}}                  per poll window

import { Socket } from 'phoenix'
import { presenceDiff, setPresence } from './state/presence/reducer.js'
import { setNode, setSeq, setStatus } from './state/session/reducer.js'

const backoff = (tries) => [250, 500, 1000, 2000][tries - 1] ?? 5000

/** Joins the channel of `topic` and keeps it joined until the returned function is called. */
export function connectPresence(dispatch, { topic, user }) {
  const socket = new Socket('/socket', { reconnectAfterMs: backoff, rejoinAfterMs: backoff })
  const channel = socket.channel(topic, user ? { user } : {})
  let seq = 0

  dispatch(setStatus('connecting'))
  // The seed's client: presence_state replaces what the reducer holds, presence_diff adds
  // joins and takes leaves. Frames of one socket come in order, and a rejoin brings a
  // fresh state, so each diff is the next seq.
  channel.on('presence_state', (payload) => {
    dispatch(setPresence(payload))
    dispatch(setSeq(seq))
    dispatch(setStatus('live'))
  })
  channel.on('presence_diff', (payload) => {
    seq += 1
    dispatch(presenceDiff(payload))
    dispatch(setSeq(seq))
  })
  channel.onError(() => dispatch(setStatus('offline')))
  channel
    .join()
    .receive('ok', (reply) => {
      seq = reply.seq
      dispatch(setNode(typeof reply.node === 'string' ? reply.node : null))
    })
    .receive('error', () => {
      // Refused (a bad topic or name, or a limit): retrying would be refused again.
      dispatch(setStatus('rejected'))
      channel.leave()
      socket.disconnect()
    })
  socket.onError(() => dispatch(setStatus('offline')))
  socket.connect()

  return () => {
    channel.leave()
    socket.disconnect()
  }
}
