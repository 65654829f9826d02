// An Express application protected by ratekit. Run: npm ci && node app.js
'use strict';

const express = require('express');
const { ratekit } = require('./ratekit');

const app = express();
app.use(ratekit()); // before the routes: every request is checked

app.get('/api/items', (req, res) => res.json({ items: ['a', 'b'] }));

const port = Number(process.env.PORT || 3000);
app.listen(port, process.env.HOST || '127.0.0.1', () => console.log(`listening on ${port}`));
