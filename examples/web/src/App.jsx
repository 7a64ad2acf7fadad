import { useEffect } from 'react'
import { useDispatch, useSelector } from 'react-redux'
import { PlayIcon } from './components/Icons.jsx'
import LoginForm from './components/LoginForm.jsx'
import LivePresence from './components/Presence.jsx'
import VideoSwitcher from './components/VideoSwitcher.jsx'
import { connectPresence } from './socket.js'
import { watch } from './state/session/reducer.js'
import { idOf, topicOf, videoFor } from './videos.js'

const STATUS_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  offline: 'Reconnecting…',
  rejected: 'Refused by the server',
}

function writeUrl(id, user) {
  const url = new URL(window.location.href)
  url.searchParams.set('v', id)
  if (user) url.searchParams.set('user', user)
  else url.searchParams.delete('user')
  window.history.replaceState(null, '', url)
}

export default function App() {
  const dispatch = useDispatch()
  const topic = useSelector((s) => s.session.topic)
  const user = useSelector((s) => s.session.user)
  const status = useSelector((s) => s.session.status)
  const seq = useSelector((s) => s.session.seq)
  const node = useSelector((s) => s.session.node)
  const id = idOf(topic)
  const video = videoFor(id)

  useEffect(() => connectPresence(dispatch, { topic, user }), [dispatch, topic, user])
  useEffect(() => {
    writeUrl(id, user)
    document.title = `${video.title} · Who's watching`
  }, [id, user, video.title])

  const go = (nextId, nextUser) => dispatch(watch({ topic: topicOf(nextId), user: nextUser }))

  return (
    <div className="app">
      <header className="topbar">
        <div className="brand">
          <span className="brand-dot" aria-hidden="true" />
          <span className="brand-name">presence-engine</span>
          <span className="brand-tag">live demo</span>
        </div>
        <LoginForm user={user} onLogin={(name) => go(id, name)} onLogout={() => go(id, null)} />
      </header>

      <main className="layout">
        <section className="stage" aria-labelledby="video-title">
          <div className="player" style={{ '--hue': video.hue }}>
            <span className={`live-badge ${status}`} data-testid="status">
              <span className="live-dot" aria-hidden="true" />
              {STATUS_TEXT[status]}
            </span>
            <span className="play" aria-hidden="true">
              <PlayIcon />
            </span>
            <span className="player-caption">{video.speaker}</span>
          </div>
          <div className="stage-bar">
            <div>
              <h1 id="video-title" className="video-heading">
                {video.title}
              </h1>
              <p className="video-sub">
                <code>{topic}</code>
                {seq > 0 && <span className="seq"> · update #{seq}</span>}
                {node && (
                  <span className="node" title="The cluster node this page's socket is connected to">
                    {' · via node '}
                    <span data-testid="node">{node}</span>
                  </span>
                )}
              </p>
            </div>
            <LivePresence />
          </div>
          <p className="note">
            Signed-in users count once, however many tabs they open; each anonymous tab is a viewer.
            The server sends this page numbers only, never who is watching.
          </p>
        </section>

        <VideoSwitcher current={id} onSelect={(nextId) => go(nextId, user)} />
      </main>
    </div>
  )
}
