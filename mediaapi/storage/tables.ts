export interface MediaapiDatabase {
  mediaapi_media_repository: {
    media_id: string;
    server_name: string;
    content_type: string | null;
    file_size_bytes: number | null;
    upload_name: string | null;
    user_id: string;
    created_ts: number;
    hash: string | null;
    unused_expires_ts: number | null;
  };
  mediaapi_thumbnails: {
    hash: string;
    width: number;
    height: number;
    method: string;
    animated: number;
    content_type: string;
    file_size_bytes: number;
    actual_width: number;
    actual_height: number;
    created_ts: number;
  };
  mediaapi_url_previews: {
    url: string;
    ts_bucket: number;
    preview: string;
    created_ts: number;
  };
}
