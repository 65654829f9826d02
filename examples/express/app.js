// An Express application protected by ratekit. Run: npm ci && node app.js
'use strict';

const express = require('express');
const { ratekit } = require('./ratekit');

const app = express();
app.use(ratekit()); // before the routes: every request is checked

app.get('/api/items', (req, res) => res.json({ items: ['a', 'b'] }));
// slow work, the kind a concurrency rule keeps few of at once
app.post('/api/export', (req, res) => setTimeout(() => res.json({ export: 'done' }), 500));

const port = Number(process.env.PORT || 3000);
app.listen(port, process.env.HOST || '127.0.0.1', () => console.log(`listening on ${port}`));
