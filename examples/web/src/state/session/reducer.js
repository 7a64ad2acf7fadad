// Which video this page watches, as whom, and how its socket is doing.
import { Record } from 'immutable'
import { createAction, handleActions } from 'redux-actions'

export const watch = createAction('SESSION/WATCH') // {topic, user}
export const setStatus = createAction('SESSION/STATUS') // 'connecting' | 'live' | 'offline' | 'rejected'
export const setSeq = createAction('SESSION/SEQ')
export const setNode = createAction('SESSION/NODE') // the cluster node serving the socket, or null

export const Session = Record({ topic: 'video:1', user: null, status: 'connecting', seq: 0, node: null })

export default handleActions(
  {
    [watch]: (state, { payload: { topic, user } }) =>
      state.merge({ topic, user: user || null, status: 'connecting', seq: 0, node: null }),
    [setStatus]: (state, { payload }) => state.set('status', payload),
    [setSeq]: (state, { payload }) => state.set('seq', payload),
    [setNode]: (state, { payload }) => state.set('node', payload),
  },
  Session(),
)
