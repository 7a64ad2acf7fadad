// The seed's component shape: a presentational counter fed two numbers (CaptainFact's
// VideoDebate/Presence.jsx), and a container that connects it to the store through the
// selectors (CaptainFact's ColumnVideo did this with @connect).
import { connect } from 'react-redux'
import { onlineUsersCount, onlineViewersCount } from '../state/presence/selectors.js'
import { EyeIcon, UsersIcon } from './Icons.jsx'

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`

export const Presence = ({ nbUsers, nbViewers }) => (
  <p className="presence" data-testid="presence" aria-live="polite">
    <span className="presence-tag users" title="Signed-in people (one per person, whatever the tabs)">
      <UsersIcon />
      {plural(nbUsers, 'user')}
    </span>
    <span className="presence-sep" aria-hidden="true">
      {' · '}
    </span>
    <span className="presence-tag viewers" title="Anonymous tabs">
      <EyeIcon />
      {plural(nbViewers, 'viewer')}
    </span>
  </p>
)

export default connect((state) => ({
  nbUsers: onlineUsersCount(state),
  nbViewers: onlineViewersCount(state),
}))(Presence)
