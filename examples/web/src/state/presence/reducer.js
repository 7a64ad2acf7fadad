// The presence reducer of the seed article ("Display channel users count with
// Elixir/Phoenix + React/Redux", CaptainFact), written the way the article writes it:
// redux-actions `handleActions`, an Immutable `Record` holding the two counts,
// `state.merge(payload)` for a presence_state and `count + joins - leaves` for a
// presence_diff. It trusts the server completely: it keeps no seq and no refs, so every
// diff must be applied exactly once, in order, on top of the state it follows.
//
// This one module is used by the web page (src/) and by the wire-compatibility test
// (tests/compat/counts.test.js), which feeds it the engine's output.

import { Record } from 'immutable'
import { createAction, handleActions } from 'redux-actions'

export const setPresence = createAction('PRESENCE/SET')
export const presenceDiff = createAction('PRESENCE/DIFF')

export const PresenceState = Record({ viewers: { count: 0 }, users: { count: 0 } })

const PresenceReducer = handleActions(
  {
    [setPresence]: (state, { payload }) => state.merge(payload),
    [presenceDiff]: (state, { payload: { joins, leaves } }) =>
      state.merge({
        viewers: { count: state.viewers.count + joins.viewers.count - leaves.viewers.count },
        users: { count: state.users.count + joins.users.count - leaves.users.count },
      }),
  },
  PresenceState(),
)

export default PresenceReducer
