import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// `npm run build` writes dist/, which both demo servers serve. `npm run dev` serves the
// page with hot reload and forwards /socket to a demo server started on port 8000.
export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true },
  server: {
    proxy: { '/socket': { target: 'ws://127.0.0.1:8000', ws: true } },
  },
})
