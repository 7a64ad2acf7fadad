import { useState } from 'react'
import { USER_PATTERN } from '../videos.js'

// A demo login: the name only tells the server which tabs belong to the same person.
export default function LoginForm({ user, onLogin, onLogout }) {
  const [name, setName] = useState('')
  if (user) {
    return (
      <div className="account">
        <span className="avatar" aria-hidden="true">
          {user.slice(0, 1).toUpperCase()}
        </span>
        <span className="account-name" data-testid="user">
          {user}
        </span>
        <button type="button" className="button ghost" onClick={onLogout}>
          Sign out
        </button>
      </div>
    )
  }
  const valid = USER_PATTERN.test(name)
  return (
    <form
      className="login"
      onSubmit={(e) => {
        e.preventDefault()
        if (valid) onLogin(name)
      }}
    >
      <input
        aria-label="Your name"
        placeholder="Your name"
        value={name}
        maxLength={32}
        pattern="[A-Za-z0-9_.\-]{1,32}"
        onChange={(e) => setName(e.target.value.trim())}
      />
      <button type="submit" className="button" disabled={!valid}>
        Sign in
      </button>
    </form>
  )
}
