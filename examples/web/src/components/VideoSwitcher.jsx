import { VIDEOS } from '../videos.js'

export default function VideoSwitcher({ current, onSelect }) {
  return (
    <nav className="switcher" aria-label="Videos">
      <h2 className="switcher-title">Videos</h2>
      <ul>
        {VIDEOS.map((v) => {
          const active = v.id === current
          return (
            <li key={v.id}>
              <button
                type="button"
                className={`video-item${active ? ' active' : ''}`}
                aria-current={active ? 'true' : undefined}
                data-video={v.id}
                onClick={() => onSelect(v.id)}
              >
                <span className="thumb" style={{ '--hue': v.hue }} aria-hidden="true" />
                <span className="video-text">
                  <span className="video-title">{v.title}</span>
                  <span className="video-meta">{active ? 'Now watching' : v.speaker}</span>
                </span>
              </button>
            </li>
          )
        })}
      </ul>
    </nav>
  )
}
