import { combineReducers, createStore } from 'redux'
import presence from './presence/reducer.js'
import session, { Session } from './session/reducer.js'

export function makeStore({ topic, user }) {
  return createStore(combineReducers({ presence, session }), { session: Session({ topic, user }) })
}
