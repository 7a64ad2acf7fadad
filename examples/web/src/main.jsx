import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { Provider } from 'react-redux'
import App from './App.jsx'
import { makeStore } from './state/store.js'
import { ID_PATTERN, USER_PATTERN, topicOf } from './videos.js'
import './styles.css'

// The page's address says what it shows: /?v=<video id>&user=<name> (no user: anonymous).
const params = new URLSearchParams(window.location.search)
const id = ID_PATTERN.test(params.get('v') || '') ? params.get('v') : '1'
const user = USER_PATTERN.test(params.get('user') || '') ? params.get('user') : null

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <Provider store={makeStore({ topic: topicOf(id), user })}>
      <App />
    </Provider>
  </StrictMode>,
)
