// The seed's selectors (CaptainFact's video_debate/presence/selectors.js), for this page's
// store: the presence slice sits at the root.
import { createSelector } from 'reselect'

export const presence = (state) => state.presence

export const onlineUsersCount = createSelector(presence, (p) => p.users.count)

export const onlineViewersCount = createSelector(presence, (p) => p.viewers.count)
