// The videos of the switcher. Any `?v=<id>` works too; these are the ones on show.
export const VIDEOS = [
  { id: '1', title: 'Keynote: presence at scale', speaker: 'Main stage', hue: 252 },
  { id: '2', title: 'Privacy by default, in practice', speaker: 'Debate', hue: 330 },
  { id: '3', title: 'WebSockets from scratch', speaker: 'Workshop', hue: 190 },
  { id: '4', title: 'Lo-fi beats to code to', speaker: 'Live stream', hue: 28 },
]

export const ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/
export const USER_PATTERN = /^[A-Za-z0-9_.-]{1,32}$/

export const topicOf = (id) => `video:${id}`

export const idOf = (topic) => topic.slice('video:'.length)

export function videoFor(id) {
  return VIDEOS.find((v) => v.id === id) || { id, title: `Video ${id}`, speaker: 'Unlisted', hue: 210 }
}
